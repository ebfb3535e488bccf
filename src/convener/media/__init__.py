"""convener.media"""
