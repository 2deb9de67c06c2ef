"""The ML loop: a model trained on point-in-time features and served from the stream.

* ``task``    — the prediction task (``reorder_14d``) and its labels, from the CDC history;
* ``vectors`` — the model's input vector, made the same way in training and in serving;
* ``model``   — a standardized logistic regression (scikit-learn), saved as plain numbers;
* ``scorer``  — online scoring: a batched store read at request time, vectors, predictions;
* ``loop``    — the whole loop on one history: stream, serve, build the point-in-time and the
  naive training sets, train, compare offline and served metrics, check the skew.

ML.md describes the task, the two training sets and the results.
"""
