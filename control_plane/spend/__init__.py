"""What each request cost: its usage settled with Envoy's access-log entry and its model's price,
into the request log line, the spend metrics and the ledger (control_plane/ledger/)."""
