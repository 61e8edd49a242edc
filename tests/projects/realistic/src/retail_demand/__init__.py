"""retail-demand: daily store sales to demand models and reports."""
