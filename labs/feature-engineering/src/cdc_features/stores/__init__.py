"""Feature stores: one read interface (:class:`~cdc_features.stores.base.FeatureReader`), the
key layout and codecs written once (:mod:`~cdc_features.stores.layout`), and three stores —
Redis (the lab's online store, written from the executors), Feast on Redis, and an in-memory
store for the console view and the tests.
"""
