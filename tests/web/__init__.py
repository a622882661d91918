"""Tests of the web side: permissions, the list and detail queries, the Flask-Admin pages and the JSON API."""
