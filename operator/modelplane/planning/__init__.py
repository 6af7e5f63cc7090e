"""Pure planning: parameter counts, memory, parallel shapes, placement and cost. No I/O."""
