"""Charging by card and at convenience stores (FLOWS §6): the acquirer adapter, the
embedded sandbox acquirer, the store network's webhook and its simulator.
"""
