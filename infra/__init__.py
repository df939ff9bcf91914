"""Cortiware's AWS stack as a Pulumi (Python) program, with its policy pack and offline plan."""
