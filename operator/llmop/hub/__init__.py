"""The shell's reads from the Hugging Face hub (config.json), kept out of the pure planner."""
