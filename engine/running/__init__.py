"""What happens to a fire after the loop: the worker pool, the executor, the recorder, store retries."""
