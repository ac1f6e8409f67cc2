"""The task record, its state machine, the ports it needs and the service over them."""
