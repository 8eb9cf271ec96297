//! Splitting work over tasks, and completion markers for resume. (Being built.)
