"""What turns runs into lessons: presets, exercises and the learned-function views."""
