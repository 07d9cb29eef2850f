"""Concrete stores. Import the one you need; each pulls in only its own driver."""
