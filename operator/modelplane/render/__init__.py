"""Pure rendering: a plan and its ModelDeployment become validated Kubernetes objects through Jinja."""
