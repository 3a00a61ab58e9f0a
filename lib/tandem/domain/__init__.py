# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:tandem:domain's library: config parsing, state classification, DRBD checks, URIs and backends."""
