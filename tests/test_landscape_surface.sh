#!/usr/bin/env bash
# placeholder: being written (issue 16)
echo "FAIL test_landscape_surface: not written yet"; exit 1
