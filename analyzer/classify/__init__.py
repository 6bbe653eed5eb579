"""Pure classification: changes × rules × facts over the two model graphs → findings."""
