"""The definitions stored for an event log (columns, outcome, treatment), read back as validated objects.

The database keeps what the user sent; every reader (training, streaming, the facade) turns it into the same
:class:`~prcore_core.columns.ColumnsDefinition` and :class:`~prcore_core.preparation.ProjectDefinition` here.
"""

from __future__ import annotations

from prcore_core.columns import ColumnsDefinition, validate_columns_definition
from prcore_core.conditions import CaseDefinition
from prcore_core.preparation import ProjectDefinition


def columns_of(record) -> ColumnsDefinition:
    """The validated columns definition stored for an event log record."""
    definition = record.definition
    return validate_columns_definition(
        record.columns_header,
        definition.columns_definition,
        definition.case_attributes,
        definition.fast_mode,
        definition.start_transition,
        definition.complete_transition,
        definition.abort_transition,
    )


def project_definition_of(record, columns: ColumnsDefinition) -> ProjectDefinition:
    """The outcome and treatment definitions stored for an event log record, parsed against its columns."""
    definition = record.definition
    return ProjectDefinition(
        outcome=CaseDefinition.parse(definition.outcome_definition, columns) if definition.outcome_definition else None,
        outcome_negative=definition.outcome_definition_negative,
        treatment=(
            CaseDefinition.parse(definition.treatment_definition, columns) if definition.treatment_definition else None
        ),
    )
