# Models of the tasks app (tasks, runs, reviews, exports) arrive with the verifiable-tasks issue.
