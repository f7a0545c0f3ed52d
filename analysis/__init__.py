"""Tables, figures and the report, built from the files eval/ writes."""
