"""convener.ofp"""
