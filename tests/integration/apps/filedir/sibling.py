WHO = "sibling module next to app_file.py"
