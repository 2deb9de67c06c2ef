"""``python -m cdc_features.job``: run the streaming feature job (see :mod:`.pipeline`)."""

from cdc_features.job.pipeline import main

raise SystemExit(main())
