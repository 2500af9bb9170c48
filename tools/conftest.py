# Lets every test under tools/ import the `aiot` package and the scripts beside it.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
