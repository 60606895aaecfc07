"""Prompt families: the messages covgen sends a model, per test framework."""
