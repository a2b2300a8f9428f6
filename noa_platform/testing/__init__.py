"""Tools for testing domains: a toy domain now, the conformance kit as it lands."""
