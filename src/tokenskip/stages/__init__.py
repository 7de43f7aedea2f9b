"""One thin Typer command per DVC stage: load params, read inputs, call the library,
write outputs atomically. Heavy imports (torch, transformers) happen inside commands."""
