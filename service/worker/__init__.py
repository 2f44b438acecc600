"""Jobs: the queue that delivers job ids (``queue``) and one job's run (``tasks``)."""
