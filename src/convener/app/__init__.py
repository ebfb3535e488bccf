"""The Stasis application: one Call object per caller owning every resource it creates."""
