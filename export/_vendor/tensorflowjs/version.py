# @license See the LICENSE file.

# This code is auto-generated, do not modify this file!
version = '4.22.0'
