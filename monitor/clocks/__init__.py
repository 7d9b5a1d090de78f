"""The third stage: every open case's running periods, timed on its working-day calendar.

``periods`` turns a case into the periods its clock rules watch and finds
when each level falls due; ``table`` keeps the running ones as columns for
the kernel; ``scheduler`` knows when to look next and at which cases;
``checkpoint`` saves the table so a restart need not rebuild it.
"""
