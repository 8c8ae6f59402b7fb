"""What only the command line and the test double need: the validating receiver, the rules it
checks, ``check``'s diagnoses and the demo app.  Never imported on the push path.
"""
