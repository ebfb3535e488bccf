"""convener.ari"""
