#!/usr/bin/env bash
# placeholder: being written (issue 16)
echo "FAIL test_paper_repro: not written yet"; exit 1
