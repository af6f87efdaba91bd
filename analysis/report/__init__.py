"""The HTML report: tables, figures, sections and rendering."""
