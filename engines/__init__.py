"""Scheduling engines behind one interface, and the model they share."""
