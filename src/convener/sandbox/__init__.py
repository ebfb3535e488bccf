"""convener.sandbox"""
