"""The engine as a service: the serving loop the window talks to (in a child process or a thread),
the tasks it runs, executors for sweeps and grading."""
