"""Pure rules of the audit ledger: the hash chain, its verification, retention and query cursors."""
