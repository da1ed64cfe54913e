"""The wire between actors and learners: a validated codec and the sockets that carry it."""
