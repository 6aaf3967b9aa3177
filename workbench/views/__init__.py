"""The dashboard's views: one module per view, all consuming one :class:`~workbench.views.state.WorkbenchState`.

=============  ===========================================================================================
projects       the home page: projects with status and plugins; open, rename, delete, create
upload         drag-and-drop upload (chunked), parsed preview with row and case counts
definition     the column definition editor with inline validation and the analysis as bar charts
conditions     outcome and treatment editor (OR of AND groups, live counts), plugin parameter forms
training       training progress per plugin, held-out metrics and their plot by prefix length
process        the directly-follows graph with a layered layout
live           streaming/simulation control, live table, case drill-down, live charts
ongoing        prescriptions for an uploaded log of ongoing cases, CSV download
=============  ===========================================================================================
"""
