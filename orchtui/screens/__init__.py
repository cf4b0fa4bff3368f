"""The dashboard's screens and modals: help, forms, confirmation, details, logs."""
