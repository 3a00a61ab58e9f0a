"""ocf:tandem:domain's library: config parsing, state classification, DRBD checks, URIs and backends."""
