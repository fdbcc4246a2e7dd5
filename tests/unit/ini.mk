# unit tests of ini/ (added with the ini reader)
