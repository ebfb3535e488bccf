"""convener.speech"""
