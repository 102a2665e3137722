"""MED-NODE dataset builder (`med_node`)."""
