"""Intent examples in and out: CSV, JSONL, Rasa YAML NLU and Dialogflow ES agent exports."""
