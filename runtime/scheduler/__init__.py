"""Running what is scheduled: jobs (`runner.py`), crons (`crons.py`) and the
embedded timer that drives both in the dev server (`timer.py`). The AWS
shell drives the same runners from SQS and EventBridge Scheduler."""
