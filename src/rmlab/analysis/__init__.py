"""Analysis of run outputs: plots, tables, correlation studies."""
