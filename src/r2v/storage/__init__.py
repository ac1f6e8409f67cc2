"""Blob stores for finished videos."""
