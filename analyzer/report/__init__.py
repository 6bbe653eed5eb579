"""Pure renderers: a :class:`CheckReport` in, text out. The CLI does all writing."""
