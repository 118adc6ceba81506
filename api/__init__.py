"""Earshot's search API."""
