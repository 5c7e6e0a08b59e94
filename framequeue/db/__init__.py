"""Database plumbing the ports' backends share (the job store and the queue on one SQLite file or one
PostgreSQL schema): connections, transactions, reconnects and schema helpers, with no rule of either port."""
