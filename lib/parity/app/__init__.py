"""The application edge: the job contract (`jobkit`), each job's flow where it spans rooms
(`training_run`, `scoring_run`), and the `parity` command (`cli`)."""
